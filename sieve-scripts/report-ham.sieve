# mailsift: a message the user moves out of Junk is a ham report, unless it
# goes to Trash (that is throwing spam away) or to another Junk folder.
# Run by Pigeonhole's imap_sieve for COPY (and MOVE) from Junk to any
# mailbox; see contrib/dovecot/90-mailsift-imapsieve.conf.
require ["vnd.dovecot.pipe", "copy", "imapsieve", "environment", "variables",
         "special-use"];

if environment :matches "imap.mailbox" "*" {
	set "mailbox" "${1}";
}
if anyof (specialuse_exists "${mailbox}" ["\\Trash", "\\Junk"],
          string :is "${mailbox}" ["Trash", "Junk"]) {
	stop;
}
if environment :matches "imap.user" "*" {
	set "username" "${1}";
}
pipe :copy "mailsift-spool-learn" ["ham", "${username}"];
