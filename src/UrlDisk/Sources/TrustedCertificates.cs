using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace UrlDisk.Sources;

/// <summary>
/// The CA certificates an option names (http and ftp's <c>cafile</c>, nbd's <c>tls-ca</c> and <c>tls-certificates</c>),
/// loaded when the source is opened so a bad file is one clear option error, and the check of a server's certificate
/// against them. One implementation for every protocol that speaks TLS.
/// </summary>
internal static class TrustedCertificates
{
    /// <summary>The certificates of the PEM file at <paramref name="path"/>; <paramref name="option"/> names where it came
    /// from in messages (for example <c>http: option 'cafile'</c>), <paramref name="missingHint"/> is added when it does not exist.</summary>
    public static X509Certificate2Collection Load(string path, string option, string missingHint = "")
    {
        if (!System.IO.File.Exists(path))
        {
            throw new OptionException($"{option}: '{path}' does not exist{missingHint}");
        }

        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPemFile(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new OptionException($"{option}: cannot load PEM certificates from '{path}': {e.Message}");
        }

        if (certificates.Count == 0)
        {
            throw new OptionException($"{option}: '{path}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }

        return certificates;
    }

    /// <summary>Builds <paramref name="leaf"/>'s chain with <paramref name="trusted"/> as the only roots (no revocation
    /// check, as QEMU and curl do for a given CA file); the chain is returned for the error message.</summary>
    public static bool ChainBuilds(X509Certificate2 leaf, X509Certificate2Collection trusted, X509Chain chain)
    {
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(leaf);
    }
}
