using FtpCluster.Grains.Hosting;

namespace FtpCluster.Grains.Tests.Hosting;

/// <summary>Paths resolved as the system opens them (links and '..' followed) and checked against the model roots.</summary>
public sealed class ModelRootsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-roots-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Folder(string name) => Directory.CreateDirectory(Path.Combine(_dir, name)).FullName;

    [Fact]
    public void A_file_under_a_root_is_allowed_and_one_beside_it_is_refused_naming_the_path_and_the_roots()
    {
        string root = Folder("models");
        string outside = Folder("elsewhere");
        var roots = new ModelRoots([root]);

        roots.Check(Path.Combine(root, "llama", "model.bin"), "model");
        Assert.True(roots.Contains(root));
        // A folder whose name only starts like the root's is not under it.
        Assert.False(roots.Contains(root + "-other"));

        string refused = Path.Combine(outside, "model.bin");
        var error = Assert.Throws<PathOutsideModelRootsException>(() => roots.Check(refused, "model"));
        Assert.Equal($"model '{refused}' is outside the model roots ({root}): a silo loads files only from under its --model-root folders", error.Message);
    }

    [Fact]
    public void Dot_dot_and_links_are_followed_as_the_system_follows_them()
    {
        string root = Folder("models");
        string outside = Folder("secret");
        var roots = new ModelRoots([root]);

        // Text that stays under the root, '..' and all, is fine; '..' that climbs out is not.
        roots.Check(Path.Combine(root, "a", "..", "b.bin"), "model");
        Assert.Throws<PathOutsideModelRootsException>(() => roots.Check(Path.Combine(root, "..", "secret", "b.bin"), "model"));

        // A link inside the root that points out of it: refused, and the message says where it leads.
        string link = Path.Combine(root, "escape");
        Directory.CreateSymbolicLink(link, outside);
        var error = Assert.Throws<PathOutsideModelRootsException>(() => roots.Check(Path.Combine(link, "weights.bin"), "tokenizer"));
        Assert.Contains($"(it resolves to '{Path.Combine(outside, "weights.bin")}')", error.Message);

        // '..' after a link goes up from where the link leads, as the system does: root/escape/../x.bin is root/x.bin
        // as text, but the file opened is secret's sibling.
        Assert.Equal(Path.Combine(_dir, "x.bin"), ModelRoots.Resolve(Path.Combine(link, "..", "x.bin")));

        // A link from outside into the root is fine: what counts is where the file is.
        string inward = Path.Combine(outside, "inward");
        Directory.CreateSymbolicLink(inward, root);
        roots.Check(Path.Combine(inward, "model.bin"), "model");
    }

    [Fact]
    public void A_root_given_through_a_link_holds_the_files_the_link_leads_to()
    {
        string real = Folder("real-models");
        string linkedRoot = Path.Combine(_dir, "models-link");
        Directory.CreateSymbolicLink(linkedRoot, real);
        var roots = new ModelRoots([linkedRoot]);

        Assert.Equal([real], roots.Folders);
        roots.Check(Path.Combine(real, "m.bin"), "model");
        roots.Check(Path.Combine(linkedRoot, "m.bin"), "model");
    }

    [Fact]
    public void Links_that_loop_are_an_error_not_a_hang()
    {
        string a = Path.Combine(_dir, "a");
        string b = Path.Combine(_dir, "b");
        File.CreateSymbolicLink(a, b);
        File.CreateSymbolicLink(b, a);
        var error = Assert.Throws<IOException>(() => ModelRoots.Resolve(Path.Combine(a, "model.bin")));
        Assert.Contains("symbolic links", error.Message);
    }

    [Fact]
    public void Without_configured_roots_a_silo_loads_from_the_hugging_face_cache_and_what_it_serves()
    {
        string served = Folder("served");
        string model = Path.Combine(served, "model.bin");
        File.WriteAllBytes(model, []);
        var roots = ModelRoots.For(new FtpClusterSiloOptions { Serve = [$"{model}=m", "org/repo"] });

        Assert.Equal(2, roots.Folders.Count);
        Assert.Contains(served, roots.Folders);
        Assert.Equal(roots.Folders, ModelRoots.For(new FtpClusterSiloOptions { ModelRoots = [.. roots.Folders] }).Folders);
        Assert.Equal([served], ModelRoots.For(new FtpClusterSiloOptions { ModelRoots = [served], Serve = [model] }).Folders);
    }
}
