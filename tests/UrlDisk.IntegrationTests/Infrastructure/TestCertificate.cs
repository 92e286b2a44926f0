namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>A self-signed certificate for 127.0.0.1 and localhost, made with openssl at test time.</summary>
public sealed record TestCertificate(string CertificatePath, string KeyPath)
{
    public static async Task<TestCertificate> CreateAsync(string directory)
    {
        string openssl = ProcessRunner.RequireTool("openssl", "openssl");
        string cert = Path.Combine(directory, "cert.pem");
        string key = Path.Combine(directory, "key.pem");
        var r = await ProcessRunner.RunAsync(openssl,
        [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ], TimeSpan.FromSeconds(30));
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"openssl could not make a test certificate: {r}");
        }

        return new TestCertificate(cert, key);
    }
}
