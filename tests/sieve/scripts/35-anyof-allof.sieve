require ["fileinto", "imap4flags"];
if allof (exists "from", anyof (header :contains "to" "example.test", address :is "from" "nobody@nowhere")) {
  addflag "\\Answered";
  fileinto "Work";
} else {
  discard;
}
