// Reads a remote (or local) image as a Stream and prints its size and SHA-256.
// Usage: ReadStream URL
using System.Security.Cryptography;
using UrlDisk;
using UrlDisk.Opening;

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: ReadStream URL");
    return 2;
}

await using IBlockDevice disk = await ImageOpener.OpenAsync(args[0], format: "raw");
await using var stream = new BlockDeviceStream(disk);
byte[] hash = await SHA256.HashDataAsync(stream);
Console.WriteLine($"{disk.Length} {Convert.ToHexStringLower(hash)}");
return 0;
