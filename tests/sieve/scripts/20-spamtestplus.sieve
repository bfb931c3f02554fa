require ["spamtestplus", "fileinto", "relational", "comparator-i;ascii-numeric"];
if spamtest :percent :value "ge" :comparator "i;ascii-numeric" "90" { fileinto "Spam-High"; }
elsif spamtest :percent :value "ge" :comparator "i;ascii-numeric" "50" { fileinto "Junk"; }
elsif spamtest :percent :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "Other"; }
