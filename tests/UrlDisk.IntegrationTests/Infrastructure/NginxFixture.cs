namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>One nginx shared by the tests of a class (each test uses its own file names, so counts stay apart).</summary>
public sealed class NginxFixture : IAsyncLifetime
{
    private NginxServer? _server;

    public NginxServer Server => _server ?? throw new InvalidOperationException("nginx is not started");

    public async Task InitializeAsync() => _server = await NginxServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
