namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>
/// A test CA with a server certificate (127.0.0.1, localhost) and a client certificate, made with openssl at test time,
/// laid out as GnuTLS x509 directories (qemu's tls-creds-x509 dir=, nbdkit's --tls-certificates): ServerDirectory holds
/// ca-cert.pem, server-cert.pem, server-key.pem; ClientDirectory ca-cert.pem, client-cert.pem, client-key.pem;
/// CaOnlyDirectory only ca-cert.pem.
/// </summary>
public sealed record TestPki(string CaPath, string ServerDirectory, string ClientDirectory, string CaOnlyDirectory)
{
    public string ServerCertificatePath => Path.Combine(ServerDirectory, "server-cert.pem");

    public string ServerKeyPath => Path.Combine(ServerDirectory, "server-key.pem");

    public static async Task<TestPki> CreateAsync(string directory, string name = "pki")
    {
        string root = Directory.CreateDirectory(Path.Combine(directory, name)).FullName;
        string server = Directory.CreateDirectory(Path.Combine(root, "server")).FullName;
        string client = Directory.CreateDirectory(Path.Combine(root, "client")).FullName;
        string caOnly = Directory.CreateDirectory(Path.Combine(root, "ca")).FullName;
        string ca = Path.Combine(root, "ca-cert.pem");
        string caKey = Path.Combine(root, "ca-key.pem");
        string[] ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        await OpenSslAsync(["req", "-x509", .. ec, "-keyout", caKey, "-out", ca, "-days", "2", "-subj", $"/CN=UrlDisk test CA {name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        await IssueAsync(root, ca, caKey, ec, Path.Combine(server, "server-cert.pem"), Path.Combine(server, "server-key.pem"), "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
        await IssueAsync(root, ca, caKey, ec, Path.Combine(client, "client-cert.pem"), Path.Combine(client, "client-key.pem"), "/CN=urldisk-client",
            "extendedKeyUsage=clientAuth\n");
        foreach (string dir in new[] { server, client, caOnly })
        {
            File.Copy(ca, Path.Combine(dir, "ca-cert.pem"));
        }

        return new TestPki(ca, server, client, caOnly);
    }

    private static async Task IssueAsync(string root, string ca, string caKey, string[] ec, string cert, string key, string subject, string extensions)
    {
        string csr = cert + ".csr";
        string ext = cert + ".ext";
        await File.WriteAllTextAsync(ext, extensions);
        await OpenSslAsync(["req", .. ec, "-keyout", key, "-out", csr, "-subj", subject]);
        await OpenSslAsync(["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-CAserial", Path.Combine(root, "serial"),
            "-out", cert, "-days", "2", "-extfile", ext]);
        File.Delete(csr);
        File.Delete(ext);
    }

    private static async Task OpenSslAsync(string[] args)
    {
        var r = await ProcessRunner.RunAsync(ProcessRunner.RequireTool("openssl", "openssl"), args, TimeSpan.FromSeconds(30));
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"openssl could not make the test certificates: {r}");
        }
    }
}
