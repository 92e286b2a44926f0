using System.Net.Sockets;

namespace UrlDisk.Nbd;

/// <summary>One reply (all chunks of it) to write as a unit, and what to give back once it is written or dropped.</summary>
internal sealed class Reply(ArraySegment<byte>[] segments, Action? done = null)
{
    public ArraySegment<byte>[] Segments { get; } = segments;

    public void Done() => done?.Invoke();
}

/// <summary>
/// Writes a connection's replies with blocking sends, one at a time. A reply ready on the connection's reader thread
/// is written there and then when nothing else is queued (a booting guest's small reads cost no thread hand-off);
/// replies finished elsewhere (a device that completed asynchronously) are queued for a writer thread started on first
/// need, so no thread-pool thread ever blocks on a slow client. A send that makes no progress for the reply timeout
/// fails the connection: its queued replies are dropped and <c>failed</c> cuts it.
/// </summary>
internal sealed class ReplyWriter(Socket socket, Action<Exception> failed, Stream? tls = null)
{
    private readonly Queue<Reply> _queue = new();
    private Thread? _thread;
    private bool _writing;
    private bool _dead;
    private bool _closing;

    public void Send(Reply reply, bool inline)
    {
        bool writeNow = false;
        lock (_queue)
        {
            if (!_dead)
            {
                if (inline && !_writing && _queue.Count == 0)
                {
                    _writing = true;
                    writeNow = true;
                }
                else
                {
                    _queue.Enqueue(reply);
                    StartThreadIfNeeded();
                    Monitor.PulseAll(_queue);
                    return;
                }
            }
        }

        if (!writeNow)
        {
            reply.Done();
            return;
        }

        Write(reply);
        lock (_queue)
        {
            _writing = false;
            if (_queue.Count > 0)
            {
                Monitor.PulseAll(_queue);
            }
        }
    }

    /// <summary>Ends the writer thread once the queue is empty (every reply was written or dropped).</summary>
    public void Close()
    {
        Thread? thread;
        lock (_queue)
        {
            _closing = true;
            thread = _thread;
            Monitor.PulseAll(_queue);
        }

        thread?.Join();
    }

    private void StartThreadIfNeeded()
    {
        if (_thread is null)
        {
            _thread = new Thread(Run) { IsBackground = true, Name = "nbd reply writer" };
            _thread.Start();
        }
    }

    private void Run()
    {
        while (true)
        {
            Reply reply;
            lock (_queue)
            {
                while ((_queue.Count == 0 || _writing) && !(_closing && _queue.Count == 0))
                {
                    Monitor.Wait(_queue);
                }

                if (_queue.Count == 0)
                {
                    return;
                }

                reply = _queue.Dequeue();
                _writing = true;
            }

            Write(reply);
            lock (_queue)
            {
                _writing = false;
                Monitor.PulseAll(_queue);
            }
        }
    }

    private void Write(Reply reply)
    {
        try
        {
            var segments = reply.Segments;
            if (tls is not null)
            {
                WriteTls(segments);
            }
            else if (segments.Length == 1)
            {
                SendAll(segments[0]);
            }
            else
            {
                // One sendmsg for header and data; a partial send (a full socket buffer) goes on from where it stopped.
                int total = 0;
                foreach (var s in segments)
                {
                    total += s.Count;
                }

                int sent = socket.Send(segments);
                if (sent < total)
                {
                    foreach (var s in segments)
                    {
                        if (sent >= s.Count)
                        {
                            sent -= s.Count;
                            continue;
                        }

                        SendAll(s[sent..]);
                        sent = 0;
                    }
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            Fail(e);
        }
        finally
        {
            reply.Done();
        }
    }

    /// <summary>Under TLS a reply's pieces are joined first, so it goes out as one record rather than one per piece.</summary>
    private void WriteTls(ArraySegment<byte>[] segments)
    {
        if (segments.Length == 1)
        {
            tls!.Write(segments[0]);
            return;
        }

        int total = 0;
        foreach (var s in segments)
        {
            total += s.Count;
        }

        byte[] joined = System.Buffers.ArrayPool<byte>.Shared.Rent(total);
        try
        {
            int at = 0;
            foreach (var s in segments)
            {
                s.AsSpan().CopyTo(joined.AsSpan(at));
                at += s.Count;
            }

            tls!.Write(joined, 0, total);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(joined);
        }
    }

    private void SendAll(ArraySegment<byte> segment)
    {
        while (segment.Count > 0)
        {
            segment = segment[socket.Send(segment.AsSpan())..];
        }
    }

    private void Fail(Exception e)
    {
        List<Reply> dropped;
        lock (_queue)
        {
            if (_dead)
            {
                return;
            }

            _dead = true;
            dropped = [.. _queue];
            _queue.Clear();
        }

        foreach (var r in dropped)
        {
            r.Done();
        }

        failed(e);
    }
}
