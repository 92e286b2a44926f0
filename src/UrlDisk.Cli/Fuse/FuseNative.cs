using System.Runtime.InteropServices;

namespace UrlDisk.Cli.Fuse;

/// <summary>
/// The libc calls the FUSE server needs (Linux, LP64). Source-generated and blittable, so Native AOT needs no
/// reflection; errors come back as the errno in <see cref="Marshal.GetLastPInvokeError"/>.
/// </summary>
internal static unsafe partial class FuseNative
{
    public const int ORdOnly = 0;
    public const int ORdWr = 2;
    public const int ONonBlock = 0x800;
    public const int OCloExec = 0x80000;
    public const ulong MsNoSuid = 2;
    public const ulong MsNoDev = 4;
    public const int MntDetach = 2;
    private const int AfUnix = 1;
    private const int SockStream = 1;
    private const int SolSocket = 1;
    private const int ScmRights = 1;
    private const int FSetFd = 2;
    private const int FdCloExec = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    public static int Errno => Marshal.GetLastPInvokeError();

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadRaw(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteRaw(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fileSystemType, ulong flags, string data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    [LibraryImport("libc", EntryPoint = "getegid")]
    public static partial uint GetEffectiveGroupId();

    [LibraryImport("libc", EntryPoint = "setsid", SetLastError = true)]
    public static partial int SetSid();

    [LibraryImport("libc", EntryPoint = "dup2", SetLastError = true)]
    public static partial int Dup2(int oldFd, int newFd);

    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    private static partial int SocketPairRaw(int domain, int type, int protocol, int* fds);

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    private static partial nint RecvMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatRaw(string path, byte* buffer);

    /// <summary>read(2) into <paramref name="buffer"/>: the byte count, or -1 with <see cref="Errno"/> set.</summary>
    public static nint Read(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            return ReadRaw(fd, p, (nuint)buffer.Length);
        }
    }

    /// <summary>write(2) of <paramref name="data"/> in one call (a FUSE reply must be one write).</summary>
    public static nint Write(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            return WriteRaw(fd, p, (nuint)data.Length);
        }
    }

    /// <summary>An AF_UNIX stream pair; neither end is close-on-exec (one goes to fusermount3).</summary>
    public static bool TrySocketPair(out int first, out int second)
    {
        int* fds = stackalloc int[2];
        bool ok = SocketPairRaw(AfUnix, SockStream, 0, fds) == 0;
        first = fds[0];
        second = fds[1];
        return ok;
    }

    public static void SetCloseOnExec(int fd) => Fcntl(fd, FSetFd, FdCloExec);

    /// <summary>Receives one byte and one descriptor passed with SCM_RIGHTS; -1 on EOF or error.</summary>
    public static int ReceiveDescriptor(int socket)
    {
        byte data = 0;
        var iov = new IoVec { Base = &data, Length = 1 };
        byte* control = stackalloc byte[64];
        new Span<byte>(control, 64).Clear();
        var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = 24 }; // CMSG_SPACE(sizeof(int))
        nint received;
        do
        {
            received = RecvMsg(socket, &message, 0);
        }
        while (received < 0 && Errno == 4); // EINTR

        if (received <= 0 || message.ControlLength < 20)
        {
            return -1;
        }

        // struct cmsghdr: size_t cmsg_len; int cmsg_level; int cmsg_type; then the data.
        int level = *(int*)(control + 8);
        int type = *(int*)(control + 12);
        return level == SolSocket && type == ScmRights ? *(int*)(control + 16) : -1;
    }

    /// <summary>stat(2): 0, or the errno (ENOTCONN for a mount whose server died).</summary>
    public static int StatErrno(string path)
    {
        byte* buffer = stackalloc byte[256];
        return StatRaw(path, buffer) == 0 ? 0 : Errno;
    }
}
