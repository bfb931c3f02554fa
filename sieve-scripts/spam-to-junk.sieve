# mailsift's default sieve_before script: spam (as mailsift-lmtpd or
# mailsift-lda marked it) goes to Junk. Users' own scripts run after it and
# see the same X-Spam-* headers (spamtest reads X-Spam-Score).
require "fileinto";
if header :is "X-Spam-Flag" "YES" {
  fileinto "Junk";
}
