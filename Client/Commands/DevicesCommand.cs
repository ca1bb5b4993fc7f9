using System.CommandLine;
using FtpCluster.Client.Cli;
using FtpCluster.Compute.Devices;
using FtpCluster.Grains.Hosting;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster devices</c>: every <c>--device</c> this machine has, with the memory budget a silo on it takes when
/// given none and, with <c>--measure</c>, the capacity it would measure: what a silo would publish to the planner.
/// </summary>
internal static class DevicesCommand
{
    private static readonly Option<bool> Measure = CliOption.Flag("--measure",
        "Also runs each device's capacity benchmark, as a silo does at start without --capacity (GFLOP/s of a GEMM, about a second each)");

    private static readonly Option<bool> Json = CliOption.Flag("--json", "Prints the devices as JSON");

    /// <param name="Device">The name <c>--device</c> takes.</param>
    /// <param name="Description">What the device is; for one that could not be opened, why not.</param>
    /// <param name="MemoryBudgetMb">What a silo on it takes as its memory budget without <c>--memory-budget-mb</c>.</param>
    /// <param name="CapacityGflops">What a silo on it measures as its capacity without <c>--capacity</c>, when asked.</param>
    private sealed record DeviceEntry(string Device, string Description, long? MemoryBudgetMb, double? CapacityGflops);

    public static Command Create()
    {
        var command = new Command("devices", """
            Lists every --device this machine has (cpu, ilgpu-cpu, and cuda:N for each NVIDIA GPU ILGPU finds), with the memory
            budget a silo on it takes when given none (a GPU's from its free memory) and, with --measure, the capacity it
            would measure at start: what the planner would give its layers by.
              devices [--measure] [--json]
            """) { Measure, Json };
        command.SetAction(List);
        return command;
    }

    private static int List(ParseResult parse)
    {
        bool measure = parse.GetValue(Measure);
        string[] names = ["cpu", "ilgpu-cpu", .. Enumerable.Range(0, IlgpuDevice.CudaDeviceCount()).Select(i => $"cuda:{i}")];
        var entries = names.Select(name => Describe(name, measure)).ToArray();
        if (parse.GetValue(Json))
        {
            CommandSupport.WriteJson(new { Host = HostCpu.Describe(), Devices = entries });
            return 0;
        }
        Console.WriteLine($"host: {HostCpu.Describe()}");
        foreach (var entry in entries)
        {
            string budget = entry.MemoryBudgetMb is { } mb ? $", memory budget {mb:N0} MiB" : "";
            string capacity = entry.CapacityGflops is { } gflops ? $", capacity {gflops:G3} GFLOP/s" : "";
            Console.WriteLine($"{entry.Device,-10} {entry.Description}{budget}{capacity}");
        }
        return 0;
    }

    /// <summary>The device opened as a silo opens it; one that cannot be opened is listed with the reason.</summary>
    private static DeviceEntry Describe(string name, bool measure)
    {
        IComputeDevice device;
        try
        {
            device = ComputeDevices.Create(name);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A listing reports a device it cannot open (a driver error, a GPU taken) rather than failing on it.
            return new DeviceEntry(name, $"cannot be opened: {e.Message}", null, null);
        }
        using (device)
        {
            long budget = SiloDeviceMeasurement.DefaultMemoryBudget(device);
            double? capacity = measure ? DeviceSpeed.MeasureGflops(device, SiloDeviceMeasurement.CapacityBenchmark) : null;
            return new DeviceEntry(name, device.Description, budget / (1024 * 1024), capacity);
        }
    }
}
