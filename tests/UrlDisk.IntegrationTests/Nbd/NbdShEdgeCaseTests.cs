using UrlDisk.Nbd;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary>Protocol edge cases driven by nbdsh (libnbd's Python shell) against an NbdServer hosted in-process.</summary>
public class NbdShEdgeCaseTests
{
    private const int MiB = 1 << 20;

    private static async Task<InProcessNbdServer> StartAsync(NbdTempDir dir, string image, bool writable, NbdServerOptions? options = null)
    {
        var device = await ImageOpener.OpenAsync(image, "raw", new OpenContext { Writable = writable });
        return new InProcessNbdServer(device, dir.File("s"), options ?? new NbdServerOptions { MaxConnections = 0, Persistent = true, ReadOnly = !writable });
    }

    [Fact]
    public async Task Read_only_export_errors_keep_the_connection_and_reads_show_holes_and_block_status()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("d.raw");
        NbdTool.CreateSparseFile(image, 8 * MiB, (MiB, 65536), (4 * MiB, 4096));
        await using var server = await StartAsync(dir, image, writable: false);

        var result = (await NbdTool.NbdShAsync(server.Uri, $"PATH = {Py(image)}\n" + ReadOnlyScript)).EnsureSuccess();
        Assert.Equal("OK", result.Stdout.Trim());
    }

    [Fact]
    public async Task Writable_export_write_errors_fast_zero_fua_and_200_requests_in_flight()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("d.raw");
        NbdTool.CreateSparseFile(image, 8 * MiB);
        await using var server = await StartAsync(dir, image, writable: true);

        var result = (await NbdTool.NbdShAsync(server.Uri, WritableScript)).EnsureSuccess();
        Assert.Equal("OK", result.Stdout.Trim());
        var bytes = await File.ReadAllBytesAsync(image);
        Assert.All(bytes[..4096], b => Assert.Equal(0xab, b));
        Assert.All(bytes[4096..8192], b => Assert.Equal(0, b));
        Assert.Equal(199 % 251, bytes[MiB + (199 * 4096)]);
    }

    [Fact]
    public async Task Block_status_without_a_selected_context_is_einval()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("d.raw");
        NbdTool.CreateSparseFile(image, MiB);
        await using var server = await StartAsync(dir, image, writable: false);

        const string script = """
            import errno
            h.set_strict_mode(0)
            assert not h.can_meta_context("base:allocation")
            try:
                h.block_status(4096, 0, lambda *a: 0)
                raise AssertionError("block status succeeded")
            except nbd.Error as e:
                assert e.errnum == errno.EINVAL, e.errnum
            assert h.pread(512, 0) == bytes(512)
            print("OK")
            """;
        var result = (await NbdTool.NbdShAsync(server.Uri, script, baseAllocation: false)).EnsureSuccess();
        Assert.Equal("OK", result.Stdout.Trim());
    }

    [Fact]
    public async Task Opt_mode_lists_exports_and_meta_contexts_and_refuses_unknown_export()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("d.raw");
        NbdTool.CreateSparseFile(image, MiB);
        await using var server = await StartAsync(dir, image, writable: false, new NbdServerOptions { ExportName = "vol", Description = "a volume", Persistent = true, MaxConnections = 0, ReadOnly = true });

        string script = $$"""
            h.set_opt_mode(True)
            h.connect_uri("nbd+unix:///vol?socket={{dir.File("s")}}")
            names = []
            h.opt_list(lambda name, desc: names.append((name, desc)) or 0)
            assert names == [("vol", "a volume")], names
            ctxs = []
            h.opt_list_meta_context(lambda name: ctxs.append(name) or 0)
            assert ctxs == ["base:allocation"], ctxs
            h.set_export_name("nope")
            try:
                h.opt_info()
                raise AssertionError("info on an unknown export succeeded")
            except nbd.Error:
                pass
            h.set_export_name("vol")
            h.opt_info()
            assert h.get_size() == {{MiB}}
            h.opt_go()
            assert h.pread(512, 0) == bytes(512)
            print("OK")
            """;
        var result = (await NbdTool.RunAsync("nbdsh", ["-c", script])).EnsureSuccess();
        Assert.Equal("OK", result.Stdout.Trim());
    }

    private static string Py(string s) => "'" + s.Replace("\\", "\\\\").Replace("'", "\\'") + "'";

    private const string ReadOnlyScript = """
        import errno
        h.set_strict_mode(0)
        size = h.get_size()
        data = open(PATH, 'rb').read()
        assert size == len(data)
        def expect_error(fn, code, what):
            try:
                fn()
            except nbd.Error as e:
                assert e.errnum == code, (what, e.errnum, e.string)
                return
            raise AssertionError(what + " succeeded")
        expect_error(lambda: h.pread(512, size - 256), errno.EINVAL, "read past end")
        expect_error(lambda: h.pread((32 << 20) + 512, 0), errno.EINVAL, "read over 32 MiB")
        expect_error(lambda: h.pwrite(b"x" * 512, 0), errno.EPERM, "write on read-only")
        expect_error(lambda: h.zero(4096, 0), errno.EPERM, "zero on read-only")
        expect_error(lambda: h.trim(4096, 0), errno.EPERM, "trim on read-only")
        # The connection is still good.
        assert h.pread(65536, 1 << 20) == data[1 << 20:(1 << 20) + 65536]
        chunks = []
        def chunk(sub, off, status, err):
            chunks.append((off, len(sub), status, bytes(sub) == data[off:off + len(sub)]))
            return 0
        buf = h.pread_structured(2 << 20, 0, chunk)
        assert buf == data[:2 << 20]
        assert chunks == [(0, 1 << 20, nbd.READ_HOLE, True), (1 << 20, 65536, nbd.READ_DATA, True), ((1 << 20) + 65536, (1 << 20) - 65536, nbd.READ_HOLE, True)], chunks
        chunks.clear()
        h.pread_structured(2 << 20, 0, chunk, nbd.CMD_FLAG_DF)
        assert chunks == [(0, 2 << 20, nbd.READ_DATA, True)], chunks
        extents = []
        def ext(ctx, off, entries, err):
            assert ctx == "base:allocation"
            extents.append((off, list(entries)))
            return 0
        h.block_status(size, 0, ext)
        assert extents == [(0, [1 << 20, 3, 65536, 0, (3 << 20) - 65536, 3, 4096, 0, (4 << 20) - 4096, 3])], extents
        extents.clear()
        h.block_status(size, 0, ext, nbd.CMD_FLAG_REQ_ONE)
        assert extents == [(0, [1 << 20, 3])], extents
        h.cache(1 << 20, 1 << 20)
        expect_error(lambda: h.cache(4096, size), errno.EINVAL, "cache past end")
        assert h.pread(4096, 4 << 20) == data[4 << 20:(4 << 20) + 4096]
        print("OK")
        """;

    private const string WritableScript = """
        import errno
        h.set_strict_mode(0)
        size = h.get_size()
        def expect_error(fn, code, what):
            try:
                fn()
            except nbd.Error as e:
                assert e.errnum == code, (what, e.errnum, e.string)
                return
            raise AssertionError(what + " succeeded")
        expect_error(lambda: h.pwrite(b"x" * 1024, size - 512), errno.ENOSPC, "write past end")
        expect_error(lambda: h.zero(4096, size), errno.ENOSPC, "zero past end")
        h.zero(65536, 0, nbd.CMD_FLAG_FAST_ZERO)  # a raw file punches a hole: fast, as with qemu-nbd
        h.pwrite(b"\xab" * 65536, 0, nbd.CMD_FLAG_FUA)
        h.zero(4096, 4096, nbd.CMD_FLAG_NO_HOLE)
        h.flush()
        got = h.pread(65536, 0)
        assert got == b"\xab" * 4096 + b"\0" * 4096 + b"\xab" * (65536 - 8192)
        # Many requests in flight at once, completed out of order by the server.
        bufs = []
        for i in range(200):
            off = (i * 8192) % (size - 8192)
            h.aio_pwrite(bytes([i % 251]) * 4096, (1 << 20) + i * 4096)
        while h.aio_in_flight() > 0:
            h.poll(-1)
        for i in range(200):
            b = nbd.Buffer(4096)
            bufs.append((i, b, h.aio_pread(b, (1 << 20) + i * 4096)))
        while h.aio_in_flight() > 0:
            h.poll(-1)
        for i, b, cookie in bufs:
            assert h.aio_command_completed(cookie)
            assert b.to_bytearray() == bytes([i % 251]) * 4096, i
        print("OK")
        """;
}
