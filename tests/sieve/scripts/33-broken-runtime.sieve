require ["fileinto", "reject"];
fileinto "Work";
if exists "from" { reject "conflicts with fileinto at run time"; }
