require ["variables", "fileinto"];
if header :matches "subject" "[*] *" {
  set :lower "list" "${1}";
  if string :is "${list}" ["dev", "project"] { fileinto "Lists.${list}"; }
}
