require ["imap4flags", "fileinto"];
setflag "\\Seen";
if header :contains "subject" ["meeting", "patch"] {
  fileinto :flags ["\\Flagged", "$label1"] "Important";
}
fileinto "Archive";
