namespace PollLease.Tests.Infrastructure;

/// <summary>Finds the output of another project in this repository, built in the same configuration as the tests.</summary>
internal static class BuiltProject
{
    /// <summary>The path of <paramref name="assembly"/>.dll under <paramref name="projectDirectory"/>/bin/&lt;Configuration&gt;/net10.0.</summary>
    public static string Dll(string projectDirectory, string assembly)
    {
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = baseDir.Parent!.Name; // tests/PollLease.Tests/bin/<Configuration>/net10.0
        var dir = baseDir;
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PollFunctions.sln")))
        {
            dir = dir.Parent;
        }
        Assert.NotNull(dir);
        var dll = Path.Combine(dir.FullName, projectDirectory, "bin", configuration, "net10.0", assembly + ".dll");
        Assert.True(File.Exists(dll), $"{dll} not built");
        return dll;
    }
}
