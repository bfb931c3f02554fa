# mailsift: a message the user copies or moves into Junk is a spam report.
# Run by Pigeonhole's imap_sieve for COPY (and MOVE) into Junk; see
# contrib/dovecot/90-mailsift-imapsieve.conf. The pipe helper writes the
# training event to mailsift's spool and returns at once.
require ["vnd.dovecot.pipe", "copy", "imapsieve", "environment", "variables"];

if environment :matches "imap.user" "*" {
	set "username" "${1}";
}
pipe :copy "mailsift-spool-learn" ["spam", "${username}"];
