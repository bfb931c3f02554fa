require ["body", "fileinto"];
if body :text :contains ["viagra", "click here", "unsubscribe"] { fileinto "Junk"; }
elsif body :raw :contains "urgent" { fileinto "Important"; }
