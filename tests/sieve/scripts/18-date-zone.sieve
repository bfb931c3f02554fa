require ["date", "fileinto", "variables"];
if date :zone "+0000" :matches "date" "weekday" "*" {
  if string :is "${1}" ["0", "6"] { fileinto "Other"; }
}
