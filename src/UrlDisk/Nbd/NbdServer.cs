using System.Net.Sockets;

namespace UrlDisk.Nbd;

/// <summary>
/// An NBD server (fixed newstyle, structured replies, <c>base:allocation</c>) exporting one <see cref="IBlockDevice"/>.
/// It knows nothing of formats or sources. A misbehaving client only loses its own connection.
/// </summary>
public sealed class NbdServer
{
    private readonly NbdExport _export;
    private int _connectionCount;

    /// <summary>A server that exports <paramref name="device"/> (not owned: dispose it after the server stops).</summary>
    public NbdServer(IBlockDevice device, NbdServerOptions? options = null)
    {
        options ??= new NbdServerOptions();
        if (options.MaxConnections < 0)
        {
            throw new OptionException($"--shared: {options.MaxConnections} is not allowed; use 0 (no limit) or a positive number");
        }

        _export = new NbdExport(device, options);
    }

    /// <summary>The exported device.</summary>
    public IBlockDevice Device => _export.Device;

    /// <summary>True when clients may write (the device can and the export is not read-only).</summary>
    public bool Writable => _export.Writable;

    /// <summary>Clients connected right now.</summary>
    public int ConnectionCount => Volatile.Read(ref _connectionCount);

    /// <summary>
    /// Accepts clients on <paramref name="listener"/> until <paramref name="stop"/> fires (or, unless persistent, the last
    /// client leaves). Then it stops accepting, lets every connection finish the requests it has in flight, and flushes.
    /// </summary>
    public async Task RunAsync(Socket listener, CancellationToken stop)
    {
        var options = _export.Options;
        int limit = options.MaxConnections == 0 ? NbdServerOptions.ConnectionCap : options.MaxConnections;
        using var slots = new SemaphoreSlim(limit);
        using var acceptStop = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var connections = new HashSet<Task>();
        var gate = new Lock();
        try
        {
            while (true)
            {
                await slots.WaitAsync(acceptStop.Token).ConfigureAwait(false);
                Socket client;
                try
                {
                    client = await listener.AcceptAsync(acceptStop.Token).ConfigureAwait(false);
                }
                catch
                {
                    slots.Release();
                    throw;
                }

                if (client.ProtocolType == ProtocolType.Tcp)
                {
                    client.NoDelay = true;
                }

                // The task is added under the gate and removes itself under it, so it cannot remove itself before it
                // was added (which would leave it in the set forever and keep a non-persistent server from ever going idle).
                Task task = null!;
                lock (gate)
                {
                    // A thread of its own per client (see NbdConnection); the task only tracks when it ends.
                    task = Task.Factory.StartNew(() =>
                    {
                        try
                        {
                            ServeClient(client, stop);
                        }
                        catch (Exception e)
                        {
                            // Whatever went wrong ends this client only.
                            options.Log?.WriteLine($"urldisk: nbd client ended by {e.GetType().Name}: {Specs.Redact.Spec(e.Message)}");
                        }
                        finally
                        {
                            bool idle;
                            lock (gate)
                            {
                                connections.Remove(task);
                                idle = connections.Count == 0;
                            }

                            slots.Release();
                            if (idle && !options.Persistent)
                            {
                                acceptStop.Cancel();
                            }
                        }
                    }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                    connections.Add(task);
                }
            }
        }
        catch (OperationCanceledException) when (acceptStop.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        Task[] remaining;
        lock (gate)
        {
            remaining = [.. connections];
        }

        await Task.WhenAll(remaining).ConfigureAwait(false);
        if (_export.Writable)
        {
            await _export.Device.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private void ServeClient(Socket client, CancellationToken stop)
    {
        string peer = client.RemoteEndPoint?.ToString() is { Length: > 0 } ep ? ep : "unix";
        Interlocked.Increment(ref _connectionCount);
        try
        {
            new NbdConnection(_export, client, peer).Run(stop);
        }
        finally
        {
            Interlocked.Decrement(ref _connectionCount);
        }
    }
}
