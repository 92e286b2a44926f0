namespace UrlDisk.Sources;

/// <summary>
/// A source whose every read is a network request for a byte range (http, ftp with REST and SIZE): the readahead
/// cache stacks on it. A capability, found down the <see cref="BlockDeviceInfo.Child"/> chain.
/// </summary>
internal interface IRemoteRangeSource;
