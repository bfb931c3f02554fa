require ["body", "fileinto"];
if body :content "text/html" :contains "<a" { fileinto "Newsletters"; }
