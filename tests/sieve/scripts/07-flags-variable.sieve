require ["imap4flags", "fileinto", "variables"];
set "tags" "";
if exists "List-Id" { addflag "tags" "list"; }
if header :contains "subject" "!" { addflag "tags" "\\Flagged"; }
fileinto :flags "${tags}" "Tagged";
keep;
