using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using UrlDisk.Sources.Http;
using UrlDisk.Specs;

namespace UrlDisk.Tests.Http;

public sealed class HttpSourceOptionsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("urldisk-http-options-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static HttpSourceOptions Parse(string driver, params (string Key, string Value)[] options)
        => HttpSourceOptions.Parse(driver, new OptionTree(options.Select(o => KeyValuePair.Create(o.Key, o.Value))));

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Theory]
    [InlineData("empty")]
    [InlineData("key")]
    [InlineData("garbage")]
    public void Cafile_without_a_certificate_is_refused(string kind)
    {
        string path = Write($"{kind}.pem", kind switch
        {
            "empty" => "",
            "key" => RSA.Create(2048).ExportRSAPrivateKeyPem(),
            _ => "not a PEM file at all\n",
        });
        var e = Assert.Throws<OptionException>(() => Parse("https", ("url", "https://h/x.img"), ("cafile", path)));
        Assert.Contains("cafile", e.Message, StringComparison.Ordinal);
        Assert.Contains("no PEM certificate", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cafile_with_a_certificate_is_loaded()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=urldisk-test-ca", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        string path = Write("ca.pem", cert.ExportCertificatePem());
        var o = Parse("https", ("url", "https://h/x.img"), ("cafile", path));
        var loaded = Assert.Single(o.CaCertificates!);
        Assert.Equal(cert.Thumbprint, loaded.Thumbprint);
    }
}
