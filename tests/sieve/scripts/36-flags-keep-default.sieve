require ["imap4flags"];
setflag ["\\Seen", "\\Draft", "kw1", "KW2"];
