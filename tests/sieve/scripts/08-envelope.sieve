require ["envelope", "fileinto"];
if envelope :domain "from" "example.org" { fileinto "Other"; }
if envelope :is "to" "user+lists@example.test" { fileinto "Lists"; }
