require ["envelope", "subaddress", "fileinto", "variables"];
if envelope :detail :matches "to" "*" {
  if string :is "${1}" "" { keep; } else { fileinto "Tagged"; }
}
if envelope :user "to" "user" { fileinto "Archive"; }
