require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "ge" :comparator "i;ascii-numeric" "X-Priority" "3" { fileinto "Old"; }
if header :count "ge" :comparator "i;ascii-numeric" "received" "3" { fileinto "Archive"; }
