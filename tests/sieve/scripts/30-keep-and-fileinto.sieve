require ["fileinto", "imap4flags"];
keep;
fileinto :flags "\\Seen" "Archive";
