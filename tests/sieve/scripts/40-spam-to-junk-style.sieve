require ["fileinto", "imap4flags"];
if header :is "X-Spam-Flag" "YES" { addflag "\\Seen"; fileinto "Junk"; }
