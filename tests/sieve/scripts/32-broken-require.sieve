require "no-such-extension";
fileinto "Work";
