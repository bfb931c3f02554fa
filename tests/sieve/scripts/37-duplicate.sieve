require ["duplicate", "fileinto"];
if duplicate :seconds 60 { fileinto "Trash"; }
