require "imap4flags";
addflag "\\Seen";
addflag ["\\Flagged", "important"];
removeflag "\\Seen";
