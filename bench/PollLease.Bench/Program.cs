using PollLease.Bench;

var section = args.Length > 0 ? args[0] : "balance";
var quick = args.Contains("--quick");
Console.Write(BalanceBench.Hashes());
Console.Write(BalanceBench.Run(quick));
Console.Write(BalanceBench.Run(quick, 0.1));
Console.Write(BalanceBench.Run(quick, 0.25));
return 0;
