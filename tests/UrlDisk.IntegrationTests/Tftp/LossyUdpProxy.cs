using System.Net;
using System.Net.Sockets;

namespace UrlDisk.IntegrationTests.Tftp;

/// <summary>
/// A UDP relay for one TFTP client that drops a share of the DATA and ACK datagrams in both directions (never the
/// request or the option acknowledgement, so there is a single server transfer). The client talks to
/// <see cref="Port"/>; the relay talks to the server from a socket of its own and follows the server's transfer ID.
/// </summary>
internal sealed class LossyUdpProxy : IAsyncDisposable
{
    private readonly Socket _front = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Socket _back = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly IPEndPoint _server;
    private readonly double _dropRate;
    private readonly Random _random;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _forward;
    private readonly Task _backward;
    private IPEndPoint? _client;
    private IPEndPoint? _serverTid;
    private int _dropped;

    public LossyUdpProxy(int serverPort, double dropRate, int seed)
    {
        _server = new IPEndPoint(IPAddress.Loopback, serverPort);
        _dropRate = dropRate;
        _random = new Random(seed);
        _front.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _back.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _forward = RelayAsync(_front, toServer: true);
        _backward = RelayAsync(_back, toServer: false);
    }

    public int Port => ((IPEndPoint)_front.LocalEndPoint!).Port;
    public int Dropped => Volatile.Read(ref _dropped);

    private bool Drop(byte[] datagram, int length)
    {
        bool droppable = length >= 4 && datagram[0] == 0 && datagram[1] is 3 or 4 && (datagram[2] | datagram[3]) != 0;
        lock (_random)
        {
            if (droppable && _random.NextDouble() < _dropRate)
            {
                Interlocked.Increment(ref _dropped);
                return true;
            }
        }

        return false;
    }

    private async Task RelayAsync(Socket from, bool toServer)
    {
        var buffer = new byte[65536];
        try
        {
            while (true)
            {
                var r = await from.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                var sender = (IPEndPoint)r.RemoteEndPoint;
                if (toServer)
                {
                    _client = sender;
                }
                else
                {
                    _serverTid = sender;
                }

                if (Drop(buffer, r.ReceivedBytes))
                {
                    continue;
                }

                bool isRequest = r.ReceivedBytes >= 2 && buffer[1] == 1;
                var (socket, to) = toServer ? (_back, isRequest ? _server : _serverTid ?? _server) : (_front, _client!);
                await socket.SendToAsync(buffer.AsMemory(0, r.ReceivedBytes), SocketFlags.None, to, _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await Task.WhenAll(_forward, _backward);
        _front.Dispose();
        _back.Dispose();
        _stop.Dispose();
    }
}
