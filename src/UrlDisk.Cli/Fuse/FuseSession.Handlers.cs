using System.Buffers;
using UrlDisk.Fuse.Wire;

namespace UrlDisk.Cli.Fuse;

/// <summary>The answers: one regular file (node 1 for a file mountpoint, node 2 inside a directory mount).</summary>
internal sealed partial class FuseSession
{
    private const ulong RootNode = 1;
    private const ulong FileNodeInDirectory = 2;
    private const uint MinimumMinor = 23; // 64-byte fuse_init_out
    private const uint OurMinor = 31;
    private const uint TypeRegular = 0x8000;
    private const uint TypeDirectory = 0x4000;
    private const uint DirentDirectory = 4;
    private const uint DirentRegular = 8;

    /// <summary>The image never changes behind the kernel's back, so names and attributes may be cached long.</summary>
    private const ulong ValidSeconds = 3600;

    private const FuseInitFlags Wanted = FuseInitFlags.AsyncRead | FuseInitFlags.BigWrites | FuseInitFlags.MaxPages | FuseInitFlags.ParallelDirOps;

    private ulong FileNode => _directory ? FileNodeInDirectory : RootNode;

    private FuseAttr AttrOf(ulong node) => node == FileNode
        ? new FuseAttr(node, _length, _time, TypeRegular | (_writable ? 0b110_100_100u : 0b100_100_100u), _uid, _gid)
        : new FuseAttr(node, 0, _time, TypeDirectory | (_writable ? 0b111_101_101u : 0b101_101_101u), _uid, _gid);

    private bool Exists(ulong node) => node == FileNode || node == RootNode;

    /// <summary>The requests answered on the reader thread: no device I/O.</summary>
    private void AnswerSmall(in FuseInHeader header, ReadOnlySpan<byte> body)
    {
        Span<byte> reply = stackalloc byte[FuseOutHeader.Size + 4096];
        var payload = reply[FuseOutHeader.Size..];
        ulong unique = header.Unique;
        ulong node = header.NodeId;
        switch (header.Opcode)
        {
            case FuseOpcode.Init:
                AnswerInit(unique, body, reply);
                return;
            case FuseOpcode.Lookup:
                if (_directory && node == RootNode && FuseName.Read(body).SequenceEqual(_fileName))
                {
                    FuseReplies.TryWriteEntryOut(payload, FileNodeInDirectory, ValidSeconds, AttrOf(FileNodeInDirectory));
                    SendReply(reply, FuseReplies.EntryOutSize, unique);
                }
                else
                {
                    SendError(unique, Errno.ENOENT);
                }

                return;
            case FuseOpcode.GetAttr:
                AnswerAttr(unique, node, reply);
                return;
            case FuseOpcode.SetAttr:
                // The size is the image's; the mode, owner and times are not stored. ftruncate to another size fails.
                if (!FuseSetAttrIn.TryRead(body, out var set))
                {
                    SendError(unique, Errno.EINVAL);
                }
                else if ((set.Valid & FuseSetAttrIn.ValidSize) != 0 && (long)set.Size != (node == FileNode ? _length : 0))
                {
                    SendError(unique, _writable ? Errno.EPERM : Errno.EROFS);
                }
                else
                {
                    AnswerAttr(unique, node, reply);
                }

                return;
            case FuseOpcode.Open:
                if (node != FileNode || !FuseOpenIn.TryRead(body, out var open))
                {
                    SendError(unique, node == RootNode ? Errno.EISDIR : Errno.ENOENT);
                }
                else if (open.WantsWrite && !_writable)
                {
                    SendError(unique, Errno.EROFS);
                }
                else
                {
                    // Pages of a read-only image stay valid across opens; a writable one changes only through us.
                    FuseReplies.TryWriteOpenOut(payload, _writable ? 0 : FuseReplies.OpenKeepCache);
                    SendReply(reply, FuseReplies.OpenOutSize, unique);
                }

                return;
            case FuseOpcode.OpenDir:
                if (_directory && node == RootNode)
                {
                    FuseReplies.TryWriteOpenOut(payload, 0);
                    SendReply(reply, FuseReplies.OpenOutSize, unique);
                }
                else
                {
                    SendError(unique, Errno.ENOTDIR);
                }

                return;
            case FuseOpcode.ReadDir:
                AnswerReadDir(unique, body, reply);
                return;
            case FuseOpcode.StatFs:
                FuseReplies.TryWriteStatFsOut(payload, _length);
                SendReply(reply, FuseReplies.StatFsOutSize, unique);
                return;
            case FuseOpcode.Release or FuseOpcode.ReleaseDir or FuseOpcode.Flush or FuseOpcode.FsyncDir or FuseOpcode.Access or FuseOpcode.Destroy:
                // FLUSH comes with every close(2) and is no durability barrier: FSYNC is.
                SendError(unique, 0);
                return;
            default:
                SendError(unique, Errno.ENOSYS);
                return;
        }
    }

    private void AnswerInit(ulong unique, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        if (!FuseInitIn.TryRead(body, out var init) || init.Major != 7 || init.Minor < MinimumMinor)
        {
            _log.WriteLine($"urldisk: the kernel speaks FUSE {init.Major}.{init.Minor}; 7.{MinimumMinor} or later is needed");
            SendError(unique, Errno.EPROTO);
            return;
        }

        var answer = new FuseInitOut(
            Major: 7,
            Minor: Math.Min(init.Minor, OurMinor),
            MaxReadahead: init.MaxReadahead,
            Flags: init.Flags & Wanted,
            MaxBackground: 64,
            CongestionThreshold: 48,
            MaxWrite: MaxIo,
            MaxPages: MaxIo / 4096);
        answer.TryWrite(reply[FuseOutHeader.Size..]);
        SendReply(reply, FuseInitOut.Size, unique);
        _initialized.TrySetResult();
    }

    private void AnswerAttr(ulong unique, ulong node, Span<byte> reply)
    {
        if (!Exists(node))
        {
            SendError(unique, Errno.ENOENT);
            return;
        }

        FuseReplies.TryWriteAttrOut(reply[FuseOutHeader.Size..], ValidSeconds, AttrOf(node));
        SendReply(reply, FuseReplies.AttrOutSize, unique);
    }

    /// <summary>".", ".." and the file; the cookie of an entry is its index plus one.</summary>
    private void AnswerReadDir(ulong unique, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        if (!_directory || !FuseIoIn.TryRead(body, out var io))
        {
            SendError(unique, _directory ? Errno.EINVAL : Errno.ENOTDIR);
            return;
        }

        var payload = reply[FuseOutHeader.Size..][..(int)Math.Min(io.Size, 4096u)];
        int used = 0;
        for (long i = io.Offset; i < 3; i++)
        {
            bool fits = i switch
            {
                0 => FuseReplies.TryWriteDirent(payload[used..], RootNode, 1, DirentDirectory, "."u8, out int w0) && Advance(ref used, w0),
                1 => FuseReplies.TryWriteDirent(payload[used..], RootNode, 2, DirentDirectory, ".."u8, out int w1) && Advance(ref used, w1),
                _ => FuseReplies.TryWriteDirent(payload[used..], FileNodeInDirectory, 3, DirentRegular, _fileName, out int w2) && Advance(ref used, w2),
            };
            if (!fits)
            {
                break;
            }
        }

        SendReply(reply, used, unique);

        static bool Advance(ref int used, int written)
        {
            used += written;
            return true;
        }
    }

    /// <summary>READ: the reply is built in the request's buffer (header, then the data). Short only at the end of the image.</summary>
    private async Task ReadAsync(ulong unique, byte[] buffer)
    {
        try
        {
            if (!FuseIoIn.TryRead(buffer.AsSpan(FuseInHeader.Size), out var io))
            {
                SendError(unique, Errno.EINVAL);
                return;
            }

            int count = io.Offset >= _length ? 0 : (int)Math.Min(Math.Min(io.Size, (uint)MaxIo), _length - io.Offset);
            try
            {
                if (count > 0)
                {
                    await _device.ReadAsync(io.Offset, buffer.AsMemory(FuseOutHeader.Size, count), _abort.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e)
            {
                SendError(unique, ErrnoOf(e, $"read of {count} bytes at {io.Offset}"));
                return;
            }

            SendReply(buffer, count, unique);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>WRITE: the data follows fuse_write_in in the request's buffer. Writes past the end of the image fail ENOSPC.</summary>
    private async Task WriteAsync(FuseInHeader header, byte[] buffer)
    {
        const int DataAt = FuseInHeader.Size + FuseIoIn.Size40;
        try
        {
            if (!FuseIoIn.TryRead(buffer.AsSpan(FuseInHeader.Size), out var io) || DataAt + (long)io.Size > header.Length)
            {
                SendError(header.Unique, Errno.EINVAL);
                return;
            }

            if (!_writable)
            {
                SendError(header.Unique, Errno.EROFS);
                return;
            }

            if (io.Offset >= _length && io.Size > 0)
            {
                SendError(header.Unique, Errno.ENOSPC);
                return;
            }

            int count = (int)Math.Min(io.Size, _length - io.Offset);
            try
            {
                await _device.WriteAsync(io.Offset, buffer.AsMemory(DataAt, count), WriteOptions.None, _abort.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                SendError(header.Unique, ErrnoOf(e, $"write of {count} bytes at {io.Offset}"));
                return;
            }

            FuseReplies.TryWriteWriteOut(buffer.AsSpan(FuseOutHeader.Size), (uint)count);
            SendReply(buffer, FuseReplies.WriteOutSize, header.Unique);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>FSYNC: the overlay's flush (a no-op for read-only images).</summary>
    private async Task FsyncAsync(ulong unique)
    {
        int errno = 0;
        try
        {
            if (_writable && _device.Info.CanFlush)
            {
                await _device.FlushAsync(_abort.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            errno = ErrnoOf(e, "flush");
        }

        SendError(unique, errno);
    }

    /// <summary>LSEEK SEEK_DATA/SEEK_HOLE from the image's extents: a hole is a range that reads as zeros.</summary>
    private async Task LseekAsync(ulong unique, byte[] body)
    {
        if (!FuseLseekIn.TryRead(body, out var seek) || seek.Whence is not (FuseLseekIn.SeekData or FuseLseekIn.SeekHole) || seek.Offset < 0)
        {
            SendError(unique, Errno.EINVAL);
            return;
        }

        if (seek.Offset >= _length)
        {
            SendError(unique, Errno.ENXIO);
            return;
        }

        long found;
        try
        {
            found = await FindAsync(seek.Offset, wantData: seek.Whence == FuseLseekIn.SeekData).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            SendError(unique, ErrnoOf(e, "lseek"));
            return;
        }

        if (found < 0)
        {
            SendError(unique, Errno.ENXIO);
            return;
        }

        var reply = new byte[FuseOutHeader.Size + FuseReplies.LseekOutSize];
        FuseReplies.TryWriteLseekOut(reply.AsSpan(FuseOutHeader.Size), found);
        SendReply(reply, FuseReplies.LseekOutSize, unique);
    }

    /// <summary>The first offset from <paramref name="from"/> that is data (or a hole); the end of the image counts as a hole, -1 when no data follows.</summary>
    private async Task<long> FindAsync(long from, bool wantData)
    {
        if (!_device.Info.ReportsAllocation)
        {
            return wantData ? from : _length;
        }

        long position = from;
        while (position < _length)
        {
            var extents = await _device.GetExtentsAsync(position, _length - position, _abort.Token).ConfigureAwait(false);
            long before = position;
            foreach (var extent in extents)
            {
                if (extent.End <= position)
                {
                    continue;
                }

                if (extent.IsZero != wantData)
                {
                    return Math.Max(extent.Offset, position);
                }

                position = extent.End;
            }

            if (position <= before)
            {
                // No progress: the device told nothing more, so treat the rest as data.
                return wantData ? position : _length;
            }
        }

        return wantData ? -1 : _length;
    }

    /// <summary>FALLOCATE: punching a hole or zeroing a range writes zeros (which may deallocate); plain allocation inside the image is a no-op.</summary>
    private async Task FallocateAsync(ulong unique, byte[] body)
    {
        if (!FuseFallocateIn.TryRead(body, out var request))
        {
            SendError(unique, Errno.EINVAL);
            return;
        }

        int mode = request.Mode & ~FuseFallocateIn.KeepSize;
        long end = request.Offset + request.Length;
        if (mode == 0)
        {
            SendError(unique, end <= _length ? 0 : Errno.EOPNOTSUPP);
            return;
        }

        if (mode is not (FuseFallocateIn.PunchHole or FuseFallocateIn.ZeroRange))
        {
            SendError(unique, Errno.EOPNOTSUPP);
            return;
        }

        if (!_writable)
        {
            SendError(unique, Errno.EROFS);
            return;
        }

        if (!_device.Info.CanWriteZeroes && !_device.Info.CanTrim)
        {
            SendError(unique, Errno.EOPNOTSUPP);
            return;
        }

        int errno = 0;
        long length = Math.Min(end, _length) - request.Offset;
        try
        {
            if (length > 0)
            {
                await _device.WriteZeroesAsync(request.Offset, length, WriteOptions.None, _abort.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            errno = ErrnoOf(e, "fallocate");
        }

        SendError(unique, errno);
    }
}
