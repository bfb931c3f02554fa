require "reject";
if header :contains "subject" ["pills", "viagra", "$$$"] { reject "No thanks."; }
