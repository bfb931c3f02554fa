require "fileinto";
if exists "List-Id" { fileinto "Lists"; stop; }
fileinto "Other";
