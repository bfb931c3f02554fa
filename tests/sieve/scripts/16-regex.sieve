require ["regex", "fileinto", "variables"];
if header :regex "subject" "^\\[(dev|project)\\]" { fileinto "Lists.${1}"; }
elsif header :regex "subject" "^\\[([a-z]+)\\]" { fileinto "Lists"; }
elsif address :regex "from" "^[a-z]+@(work|lists)\\.example$" { fileinto "Work"; }
