using System.Diagnostics;

namespace PollLease.ChaosTests.Security;

/// <summary>A throwaway CA and a server certificate for 127.0.0.1 / localhost, made with openssl for one test.</summary>
public sealed class TlsCertificates : IDisposable
{
    private TlsCertificates(string directory) => Directory = directory;

    public string Directory { get; }

    public string CaCertificate => Path.Combine(Directory, "ca.crt");

    public string ServerCertificate => Path.Combine(Directory, "redis.crt");

    public string ServerKey => Path.Combine(Directory, "redis.key");

    public static TlsCertificates Create()
    {
        var dir = Path.Combine(Path.GetTempPath(), "polltls-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
        OpenSsl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=PollLease test CA");
        OpenSsl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "redis.key", "-out", "redis.csr", "-subj", "/CN=localhost");
        OpenSsl(dir, "x509", "-req", "-in", "redis.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "redis.crt", "-days", "2", "-extfile", "ext.cnf");
        return new TlsCertificates(dir);
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);

    private static void OpenSsl(string dir, params string[] args)
    {
        var info = new ProcessStartInfo("openssl") { WorkingDirectory = dir, RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        using var p = Process.Start(info)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"openssl {string.Join(' ', args)} failed: {stderr.Result}");
    }
}
