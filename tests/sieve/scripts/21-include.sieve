require ["include", "fileinto"];
include :personal "lib";
if header :contains "subject" "meeting" { fileinto "Work"; }
