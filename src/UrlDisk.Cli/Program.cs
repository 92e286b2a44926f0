using System.CommandLine;
using UrlDisk.Cli;
using UrlDisk.Cli.Verbs;

LauncherBuildCheck.ExecLauncherIfStale(args);

var root = new RootCommand("UrlDisk: use disk images behind http, https, ftp, ftps, tftp and file URLs without downloading them first.");
root.Options.Add(CliCommon.Stats);
root.Options.Add(CliCommon.Verbose);
root.Options.Add(CliCommon.ForceShare);
root.Options.Add(CliCommon.Quiet);
root.Options.Add(CliCommon.CacheDir);
root.Subcommands.Add(InfoVerb.Create());
root.Subcommands.Add(ConvertVerb.Create());
root.Subcommands.Add(DemoVerb.Create());
root.Subcommands.Add(CreateVerb.Create());
root.Subcommands.Add(CheckVerb.Create());
root.Subcommands.Add(CompareVerb.Create());
root.Subcommands.Add(MapVerb.Create());
root.Subcommands.Add(ServeVerb.Create());
root.Subcommands.Add(MountVerb.Create());
root.Subcommands.Add(UnmountVerb.Create());
root.Subcommands.Add(SnapshotVerb.Create());
root.Subcommands.Add(AmendVerb.Create());
root.Subcommands.Add(DdVerb.Create());
root.Subcommands.Add(BenchVerb.Create());
root.Subcommands.Add(MeasureVerb.Create());
root.Subcommands.Add(ResizeVerb.Create());
root.Subcommands.Add(RebaseVerb.Create());
root.Subcommands.Add(CommitVerb.Create());
root.Subcommands.Add(CacheVerb.Create());
HelpText.Configure(root);

// A long termination timeout lets serve finish requests in flight and flush after SIGTERM.
var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = TimeSpan.FromSeconds(30) };
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    return CliCommon.ReportParseErrors(parsed);
}

return await parsed.InvokeAsync(config).ConfigureAwait(false);
