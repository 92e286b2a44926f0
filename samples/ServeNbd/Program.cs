// Serves an image over NBD (read-only) on 127.0.0.1:PORT until Ctrl+C or stdin closes.
// Usage: ServeNbd URL PORT      then, e.g.: nbdinfo nbd://127.0.0.1:PORT
using System.Net;
using System.Net.Sockets;
using UrlDisk.Nbd;
using UrlDisk.Opening;

if (args.Length != 2 || !int.TryParse(args[1], out int port))
{
    Console.Error.WriteLine("usage: ServeNbd URL PORT");
    return 2;
}

await using var image = await ImageOpener.OpenAsync(args[0]);
using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
listener.Listen();

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
_ = Task.Run(async () =>
{
    // A parent that closes our stdin (a test, a supervisor) stops the server too.
    await Console.OpenStandardInput().CopyToAsync(Stream.Null);
    await stop.CancelAsync();
});

var server = new NbdServer(image, new NbdServerOptions { ReadOnly = true, MaxConnections = 4, Persistent = true });
Console.WriteLine($"serving {image.Length} bytes on nbd://127.0.0.1:{port}");
await server.RunAsync(listener, stop.Token);
return 0;
