require "fileinto";
if header :contains "subject" "" { fileinto "Käse"; }
