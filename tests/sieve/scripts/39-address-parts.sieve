require ["fileinto"];
if address :all :is "to" "user@example.test" { fileinto "Work"; }
elsif address :localpart :is ["to", "cc"] "dev" { fileinto "Lists"; }
