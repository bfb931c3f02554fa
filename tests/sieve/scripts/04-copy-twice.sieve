require ["fileinto", "copy"];
fileinto :copy "Archive";
if address :domain "from" "work.example" { fileinto "Work"; }
