require "reject";
reject "This mailbox is closed.";
