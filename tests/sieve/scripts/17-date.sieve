require ["date", "relational", "fileinto"];
if date :value "lt" "date" "year" "2005" { fileinto "Old"; }
if currentdate :value "ge" "year" "2000" { keep; }
