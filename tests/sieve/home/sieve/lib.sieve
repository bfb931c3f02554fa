require ["fileinto", "imap4flags"];
if exists "List-Id" { addflag "\\Seen"; fileinto "Lists"; }
