require ["variables", "fileinto", "envelope"];
if envelope :localpart :matches "from" "*" { set "who" "${1}"; }
if string :is "${who}" "sender" { fileinto "Other"; }
