using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using UrlDisk.Sources.Ftp;

namespace UrlDisk.Tests.Ftp;

public class FtpTlsOptionsTests
{
    private static X509Certificate2 SelfSigned(string cn, params IPAddress[] ips)
    {
        using var key = ECDsa.Create();
        var req = new CertificateRequest($"CN={cn}", key, HashAlgorithmName.SHA256);
        if (ips.Length > 0)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (var ip in ips)
            {
                san.AddIpAddress(ip);
            }

            req.CertificateExtensions.Add(san.Build());
        }

        return req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }

    [Fact]
    public void Ip_literal_gets_a_synthetic_session_name_under_invalid()
    {
        Assert.Equal("ip-127-0-0-1.invalid", FtpTlsOptions.SessionNameFor(IPAddress.Loopback));
        Assert.Equal("ip---1.invalid", FtpTlsOptions.SessionNameFor(IPAddress.IPv6Loopback));
    }

    [Fact]
    public void Certificate_names_an_address_through_its_ip_subject_alternative_names()
    {
        using var cert = SelfSigned("example", IPAddress.Parse("192.0.2.7"), IPAddress.IPv6Loopback);
        Assert.True(FtpTlsOptions.CertificateNamesAddress(cert, IPAddress.Parse("192.0.2.7")));
        Assert.True(FtpTlsOptions.CertificateNamesAddress(cert, IPAddress.IPv6Loopback));
        Assert.False(FtpTlsOptions.CertificateNamesAddress(cert, IPAddress.Parse("192.0.2.8")));
    }

    [Fact]
    public void Common_name_counts_only_without_subject_alternative_names()
    {
        using var plain = SelfSigned("192.0.2.7");
        Assert.True(FtpTlsOptions.CertificateNamesAddress(plain, IPAddress.Parse("192.0.2.7")));
        using var withSan = SelfSigned("192.0.2.7", IPAddress.Parse("198.51.100.1"));
        Assert.False(FtpTlsOptions.CertificateNamesAddress(withSan, IPAddress.Parse("192.0.2.7")));
    }

    [Fact]
    public void One_options_object_with_the_synthetic_name_for_ip_hosts_and_the_real_name_otherwise()
    {
        var ipSettings = FtpSettings.FromNode("ftps", new UrlDisk.Specs.OptionTree([KeyValuePair.Create("url", "ftps://127.0.0.1/x")]));
        var ipOptions = FtpTlsOptions.Create(ipSettings);
        Assert.Equal("ip-127-0-0-1.invalid", ipOptions.TargetHost);
        Assert.True(ipOptions.AllowTlsResume);
        Assert.NotNull(ipOptions.RemoteCertificateValidationCallback);

        var dnsSettings = FtpSettings.FromNode("ftps", new UrlDisk.Specs.OptionTree([KeyValuePair.Create("url", "ftps://files.example.org/x")]));
        var dnsOptions = FtpTlsOptions.Create(dnsSettings);
        Assert.Equal("files.example.org", dnsOptions.TargetHost);
        Assert.Null(dnsOptions.RemoteCertificateValidationCallback);
    }
}
