require "fileinto";
if size :over 4K { fileinto "Archive"; } elsif size :under 1K { fileinto "Other"; }
