require ["vacation", "fileinto"];
vacation :days 1 :addresses ["user@example.test", "dev@lists.example"] "Away.";
fileinto "Vacation";
